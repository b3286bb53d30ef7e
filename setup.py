"""Builds the optional C extension; everything else about the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        # Optional: without a C compiler the install still succeeds and idfilter uses numpy.
        Extension(
            "offline.join._idscan",
            ["offline/join/_idscan.c"],
            optional=True,
            extra_compile_args=["-O3"],
        ),
    ]
)
