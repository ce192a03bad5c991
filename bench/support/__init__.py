"""What the benchmarks and the tests both drive: fake platform servers on 127.0.0.1 (the Telegram Bot
API, the WeChat Official Account API, WeCom), signed WeChat callbacks, and throw-away PostgreSQL
databases. It lives here because ``bench/`` never imports ``tests/``; it imports nothing from
pytest."""
