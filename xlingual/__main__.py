"""``python -m xlingual`` is the ``xl`` command."""

from xlingual.cli import app

if __name__ == "__main__":
    app(prog_name="xl")
