"""Case-study recipes (they need the 'examples' extra: torch-geometric, transformers, ...).

Each module's ``recipe()`` functions work with the command line as files, e.g.
``landform analyze examples/recipes/minilm.py:recipe``, and import as ``recipes.qm9`` / ``recipes.minilm``
with ``examples/`` on ``sys.path`` (the examples and the tests do that).
"""
