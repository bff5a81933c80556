"""Work that runs in the process pool: ``workers`` starts the pool, ``steps`` holds what
it runs. This package imports nothing itself: a worker loads only what its task names."""
