from zfsrep.cli import main

main()
