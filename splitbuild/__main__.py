from splitbuild.cli.app import main

main()
