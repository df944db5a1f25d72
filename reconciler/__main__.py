"""`python -m reconciler` is `dfr`."""

from reconciler import main

if __name__ == "__main__":
    main()
