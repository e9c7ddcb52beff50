from burrow.cli import main

main()
