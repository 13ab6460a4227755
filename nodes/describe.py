"""AudioTokenDescribe: AUDIO -> the AudioSet labels BEATs hears, as prompt text for any model."""

from __future__ import annotations

from comfy_api.latest import io, ui

from ..audiotoken_core.labels import (DEFAULT_K, DEFAULT_THRESHOLD, labels_text, parse_words, scores_text,
                                      top_labels)
from . import host_compat
from .encode import SHORTEST_WINDOW_S, tiling_note, unpack_audio
from .runtime import host_progress
from .schema import schema
from .types import CATEGORY, AudioTokenModelType, combo_problem
from .window import EMBEDDERS, window_in_use, window_input

# Encode's modes less `first`: Describe names a whole sound (mean) or each of its windows.
DESCRIBE_MODES = ("mean", "windows")


class AudioTokenDescribe(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id="AudioTokenDescribe",
            search_aliases=["audioset tags", "audio tags", "sound to text", "audio caption", "what is this sound",
                            "microphone", "sound"],
            display_name="AudioToken Describe",
            category=CATEGORY,
            # An output node, so that it runs (and shows what it heard) even with nothing connected to it.
            is_output_node=True,
            description=("Says what the sound is: the AudioSet labels the fine-tuned BEATs hears (527 classes), "
                         "as text such as 'dog, bark, animal' for any prompt node and any model. It hears the windows "
                         "AudioToken Encode cuts (a clip or last window shorter than the window is repeated to fill "
                         "it). The node shows the labels with their scores."),
            inputs=[
                AudioTokenModelType.Input("audiotoken_model",
                                          tooltip="From AudioToken Model Loader. Its BEATs file must be a "
                                                  "fine-tuned one (the official ..._finetuned_on_AS2M_cpt2.pt), "
                                                  "which holds the AudioSet head."),
                io.Audio.Input("audio", tooltip="Audio, e.g. from Load Audio. A batch of B sounds gives B texts."),
                io.Int.Input("k", default=DEFAULT_K, min=1, max=20,
                             tooltip="At most this many labels per text, best first."),
                io.Float.Input("threshold", default=DEFAULT_THRESHOLD, min=0.0, max=1.0, step=0.01,
                               tooltip="Leave out labels scoring below this probability (0-1). A text can be "
                                       "empty when nothing reaches it; the preview then names the best guess."),
                io.String.Input("exclude", default="", optional=True,
                                tooltip="Comma-separated labels to leave out, e.g. 'Speech, Music'. A word "
                                        "matches a label's name or one of its synonyms ('man speaking' leaves "
                                        "out 'Male speech, man speaking'); the next labels fill in."),
                io.Combo.Input("mode", options=list(DESCRIBE_MODES), default="mean",
                               tooltip="mean: one text per sound, from the scores averaged over its windows. "
                                       "windows: one text per window, in the order AudioToken Encode's "
                                       "windows mode makes its token sets."),
                window_input(SHORTEST_WINDOW_S,
                             "Window length in seconds. Leave it as AudioToken Encode's to get one text per "
                             "token set."),
            ],
            outputs=[io.String.Output(display_name="labels", is_output_list=True,
                                      tooltip="The labels as prompt text ('dog, bark, animal'): one text per "
                                              "sound (mean) or per window (windows). Connected to a text "
                                              "input, a list of several texts runs that node once per text.")],
        )

    @classmethod
    def validate_inputs(cls, mode=None):
        # The server does not check V3 combo values against their options.
        return combo_problem("mode", mode, DESCRIBE_MODES) or True

    @classmethod
    def execute(cls, audiotoken_model, audio, k=DEFAULT_K, threshold=DEFAULT_THRESHOLD, exclude="", mode="mean",
                window_seconds=EMBEDDERS) -> io.NodeOutput:
        host_compat.require("encode")
        waveform, sample_rate = unpack_audio(audio)
        window = window_in_use(audiotoken_model, window_seconds, SHORTEST_WINDOW_S)
        problem = audiotoken_model.head_problem()
        if problem is not None:
            raise ValueError(f"{audiotoken_model.encoder_name}: {problem}.")
        # Encode's own entry and windows: one BEATs pass, rows in Encode's order (sound-major windows).
        heard = audiotoken_model.encode(waveform, sample_rate, duration_s=window.seconds, mode=mode,
                                        heard=True, progress=host_progress())
        classes = audiotoken_model.classes()
        words = parse_words(exclude)
        tops = [top_labels(row, classes, int(k), float(threshold), words) for row in heard.heard]
        lines = [_preview_line(row, top, classes, words, float(threshold))
                 for row, top in zip(heard.heard, tops)]
        if len(lines) > 1:
            lines = [f"{_span_text(span)}: {line}" for span, line in zip(heard.spans, lines)]
        lines.append(f"window {window}")
        lines.append(tiling_note(waveform, sample_rate, 0.0, window.seconds))
        return io.NodeOutput([labels_text(top) for top in tops], ui=ui.PreviewText("\n".join(x for x in lines if x)))


def _preview_line(probs, top, classes, words, threshold) -> str:
    if top:
        return scores_text(top)
    best = top_labels(probs, classes, k=1, exclude=words)
    guess = f" (best: {scores_text(best)})" if best else ""
    return f"nothing scored {threshold:.2f} or more{guess}"


def _span_text(span) -> str:
    sound, start, end = span
    return f"sound {sound + 1}, {start:.1f}-{end:.1f} s"
