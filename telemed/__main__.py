"""`python -m telemed` is the `telemed` command."""

from telemed.cli import main

main(prog_name="telemed")
