"""langchain-tests' standard unit suite for ChatTransformers, plus its logprobs shape."""

from langchain_tests.unit_tests import ChatModelUnitTests

from mixaug.models import ChatTransformers
from mixaug.models._common import chat_logprobs, completion_logprobs
from mixaug.models.engine import Completion, TokenLogprob
from mixaug.softlabels import tokens_from_logprobs


class TestChatTransformersStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatTransformers]:
        return ChatTransformers

    @property
    def chat_model_params(self) -> dict:
        return {"model": "smollm2-135m"}


def _completion() -> Completion:
    return Completion(
        text=" good (Sentiment: positive)",
        tokens=[
            TokenLogprob(" good", -0.5, [(" good", -0.5), (" bad", -1.5)]),
            TokenLogprob(" (", -0.1, [(" (", -0.1)]),
            TokenLogprob("Sentiment", -0.2, [("Sentiment", -0.2)]),
            TokenLogprob(":", -0.01, [(":", -0.01)]),
            TokenLogprob(" positive", -0.3, [(" positive", -0.3), (" negative", -1.4)]),
            TokenLogprob(")", -0.05, [(")", -0.05)]),
        ],
        prompt_tokens=10,
        completion_tokens=6,
        finish_reason="stop",
    )


def test_chat_logprobs_have_the_openai_shape() -> None:
    lp = chat_logprobs(_completion())
    first = lp["content"][0]
    assert set(first) == {"token", "logprob", "bytes", "top_logprobs"}
    assert first["top_logprobs"][1] == {"token": " bad", "logprob": -1.5}
    assert "".join(t["token"] for t in lp["content"]) == _completion().text


def test_completion_logprobs_have_the_openai_shape() -> None:
    lp = completion_logprobs(_completion())
    assert lp["tokens"][4] == " positive"
    assert lp["top_logprobs"][4] == {" positive": -0.3, " negative": -1.4}
    assert lp["text_offset"] == [0, 5, 7, 16, 17, 26]
    # Both shapes normalise to the same tokens for the soft-label code.
    assert tokens_from_logprobs(lp) == tokens_from_logprobs(chat_logprobs(_completion()))


def test_construction_does_not_load_weights() -> None:
    from mixaug.models.engine import LocalEngine

    chat = ChatTransformers(model="some-unknown-model")
    assert chat._llm_type == "mixaug-chat-transformers"
    assert LocalEngine.get("some-unknown-model")._model is None
