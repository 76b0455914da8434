"""The optional C accelerator; everything else about the package is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and respq runs on the pure-Python parser
(``respq.speedups`` tells which functions are in use; INFO reports the parser as ``respq_request_parser``).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("respq._speedups", ["respq/_speedups.c"], optional=True)])
