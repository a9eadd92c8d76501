"""The ``weightscope`` command line (installed as the package ``weightscope_cli``)."""
