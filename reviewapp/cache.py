"""Django's Redis cache with a `clear()` that deletes only this deployment's keys.

The stock `clear()` is FLUSHDB: on a Redis database shared with anything else (another
deployment, parallel test workers with their own prefixes) it would wipe their keys too.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache

_BATCH = 500


class PrefixedRedisCache(RedisCache):
    def clear(self) -> bool:
        client = self._cache.get_client(write=True)
        pattern = f"{self.key_prefix}:*" if self.key_prefix else "*"
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=_BATCH):
            batch.append(key)
            if len(batch) >= _BATCH:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
        return True
