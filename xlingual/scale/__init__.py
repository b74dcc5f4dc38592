"""Running the long stages on a Ray cluster: ``xl translate``, ``xl features extract`` and ``xl experiment`` with ``--ray``.

Ray wraps the stage functions; it never re-implements them. Each stage has
one module here that cuts its work into shards, hands them to workers that
load their model once (:mod:`xlingual.scale.runtime`), and merges what the
workers wrote into the same files a single process writes. Ray is an optional
extra (``pip install 'xlingual[ray]'``), imported only when ``--ray`` is used.
"""
