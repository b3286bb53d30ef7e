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
        # Optional: without it reduce_pairs sorts and reduces with numpy (the same pairs).
        Extension(
            "offline.join._pairsort",
            ["offline/join/_pairsort.c"],
            optional=True,
            extra_compile_args=["-O3"],
        ),
        # Optional: without it the local join decodes every row group with pyarrow (same rows).
        Extension(
            "offline.join._pqdecode",
            ["offline/join/_pqdecode.c", "offline/join/_pqthrift.c"],
            depends=["offline/join/_pqdecode.h"],
            optional=True,
            extra_compile_args=["-O3"],
        ),
        # Optional too: without it ranking.fused runs its Python pass (the same answers).
        # No contraction into fused multiply-adds: the scores must equal the Python reference's.
        Extension(
            "ranking._fastrank",
            ["ranking/_fastrank.c"],
            optional=True,
            extra_compile_args=["-O3", "-ffp-contract=off"],
        ),
        # Optional: without it feature_store.codecs decodes exposure hashes in Python.
        Extension(
            "feature_store._expdecode",
            ["feature_store/_expdecode.c"],
            optional=True,
            extra_compile_args=["-O3"],
        ),
        # Optional: without it service.cards writes the same bytes in Python.
        Extension(
            "service._cardwire", ["service/_cardwire.c"], optional=True, extra_compile_args=["-O3"]
        ),
        # Optional: without it the member filter hashes with hashlib and tests with numpy.
        Extension(
            "domain._idbloom", ["domain/_idbloom.c"], optional=True, extra_compile_args=["-O3"]
        ),
    ]
)
