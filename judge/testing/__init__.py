"""Test helpers shipped with the package, so tests, benchmarks and users' own checks run offline.

`judge.testing.fake_openai.FakeOpenAI`: a fault-injecting OpenAI-compatible server on loopback
(also runnable as `python -m judge.testing.fake_openai`, hence no re-export here)."""
