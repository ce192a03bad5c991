"""What the tests share: ``db`` (the SQLite/PostgreSQL matrix, scratch databases, wipe), ``waiting``
(``wait_until``, the one way to wait for something), ``chat`` (the conversation driver, the test clock,
the recording sender), ``cli`` (the installed ``outreach-bot`` in a subprocess), ``live_server`` (the
real ``serve`` process) and ``own_postgres`` (a PostgreSQL server a test may stop). The fake platform
servers (Telegram, WeChat, WeCom), WeChat's signed payloads and the scratch PostgreSQL databases are in
``bench/support``: the benchmarks drive them too, and ``bench/`` never imports ``tests/``."""
