"""The notebook as a recipe: the cell language, and notebook ⇄ recipe conversion.

* :mod:`.cells` — what a ``%%microstep`` or recipe cell says, as data (the magics and
  the converter both read cells through it);
* :mod:`.model` — cells, microsteps rendered as cells, a recipe's shape;
* :mod:`.yaml_text` — YAML text surgery that keeps comments and layout;
* :mod:`.import_recipe` — a recipe as cells (``kameleon notebook``);
* :mod:`.export` — cells as a recipe (``kameleon export-recipe``, ``%kameleon export``);
* :mod:`.files` — ``.ipynb`` files and export directories, and the entry points.

Importing the package loads none of them: the magics need only :mod:`.cells`.
"""
