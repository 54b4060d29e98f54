from monctl.cli import main

main()
