"""The local console channel (``outreach-bot console``): chat with the bot in a terminal
(``bot.channels.console.repl``). Kept free of imports: the registry reads ``spec`` at start-up."""
