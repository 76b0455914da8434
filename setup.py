"""The optional C accelerator; everything else about the package is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and respq runs on the pure-Python parser
(``respq.protocol.SPEEDUPS`` tells which one is in use).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("respq._speedups", ["respq/_speedups.c"], optional=True)])
