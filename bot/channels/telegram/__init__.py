"""The Telegram channel (python-telegram-bot): residents, grid workers and admins.

Kept free of imports: the registry reads ``spec`` at every start-up, and python-telegram-bot is loaded
only when the channel runs (``bot.channels.telegram.adapter``)."""
