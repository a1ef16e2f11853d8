from bench.cli import main

if __name__ == "__main__":  # spawned client workers (bench.workers) import this module again
    main()
