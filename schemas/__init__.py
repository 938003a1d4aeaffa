"""Contracts between the services: Avro schemas (*.avsc), their codec and the topic catalogue."""

from schemas.codec import CODEC, DecodeError, decode, decode_as, encode
from schemas.topics import BY_NAME, CATALOGUE, Topic, series_key

__all__ = ["BY_NAME", "CATALOGUE", "CODEC", "DecodeError", "Topic", "decode", "decode_as", "encode", "series_key"]
