"""``python -m bridge`` is the ``bridge`` command (where a bare ``bridge`` is iproute2's
``/sbin/bridge``, or the virtualenv is not active: ``.venv/bin/python -m bridge``)."""

from bridge.cli import main

if __name__ == "__main__":
    main()
