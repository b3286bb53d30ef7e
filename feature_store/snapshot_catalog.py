"""A snapshot's catalog read with a blocking client, for the offline side and the CLI (the
service's reads are asynchronous, in feature_store/reader.py)."""

from __future__ import annotations

import redis

from domain.records import Catalog, Debunk, Rumor
from feature_store import keys
from feature_store.codecs import load_json
from feature_store.models import decode_feed_model


def load_catalog(client: redis.Redis, version: str) -> Catalog:
    """The rumors, debunks and ranker of ``version``, in one pipelined round trip."""
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(keys.rumors(version))
    pipe.hgetall(keys.debunks(version))
    pipe.hgetall(keys.model(version))
    raw_rumors, raw_debunks, raw_model = pipe.execute()
    rumors = [Rumor.from_dict(load_json(v)) for v in raw_rumors.values()]
    debunks = [Debunk.from_dict(load_json(v)) for v in raw_debunks.values()]
    return Catalog.build(rumors, debunks, decode_feed_model(raw_model))
