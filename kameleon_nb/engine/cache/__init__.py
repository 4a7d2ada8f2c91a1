"""The persistent cache: a recording/replaying HTTP(S) proxy and the cache archive.

* :mod:`~kameleon_nb.engine.cache.store`: content-addressed bodies and their index;
* :mod:`~kameleon_nb.engine.cache.proxy`: :class:`CacheProxy`, the proxy process of a
  build (record or replay), started and stopped from the build;
* :mod:`~kameleon_nb.engine.cache.server` and :mod:`~kameleon_nb.engine.cache.addon`:
  that process, built on mitmproxy (the only modules that import it);
* :mod:`~kameleon_nb.engine.cache.archive`: ``<name>-cache.tar[.gz|...]``, packed and
  unpacked.

Importing this package imports nothing else.
"""
