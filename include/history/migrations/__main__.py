from include.history.migrations import main

main()
