"""Generation backends behind one small interface (`Backend.generate`). The heavy ones (vLLM,
transformers, the OpenAI client) are imported only when constructed."""

from judge.backends.base import Backend, FakeBackend, Generation, GenerationParams, Request

__all__ = ["Backend", "FakeBackend", "Generation", "GenerationParams", "Request"]
