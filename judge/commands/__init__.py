"""CLI verbs, one module each. A module exposes `register(verbs)` that adds its subparser(s) and
binds a handler calling the Python API. Modules import only light code at the top; heavy
libraries load inside the handlers."""
