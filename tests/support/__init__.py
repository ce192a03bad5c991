"""What the tests share: the database matrix (``db``), the one polling helper (``wait_until``), the
conversation driver (``chat``), the CLI and ``serve`` subprocesses (``cli``, ``live_server``) and a
PostgreSQL server a test may stop (``own_postgres``). The fake platform servers (Telegram, WeChat,
WeCom) and the scratch databases are in ``bench/support``, because the benchmarks drive them too and
``bench/`` never imports ``tests/``."""
