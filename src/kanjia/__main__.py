from kanjia.cli.main import main

main()
