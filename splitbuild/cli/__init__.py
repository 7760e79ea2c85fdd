"""The ``splitbuild`` command line: thin typer commands over the library."""
