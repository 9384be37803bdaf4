"""The judge server: vLLM's OpenAI-compatible server as the engine (`engine`), the FastAPI judge API
in front of it (`app.create_app`, routes; `service`, judging; `protocol`, bodies; `errors`, the
envelope and statuses; `upstream`, the engine connection and proxy; `judges`, who serves with
which template), and `server.serve`, what `judgeforge serve` runs."""
