from cachenet.cli import main

main()
