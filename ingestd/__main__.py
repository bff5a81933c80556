"""Allow ``python -m ingestd``.

Guarded: a parse-pool worker imports the main module again (as ``__mp_main__``) and
must not run the command line.
"""

if __name__ == "__main__":
    from ingestd.console import main

    raise SystemExit(main())
