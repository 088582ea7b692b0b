from streamwatch.cli.main import main

main()
