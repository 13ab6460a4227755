// Draws the text result of the pack's nodes (`ui.text`, e.g. Download Models' "downloaded and verified into
// ...") on the node itself. The frontends (1.27 to 1.58) draw `text` only for their own PreviewAny and SaveText
// nodes, chosen by node name, so without this the result reaches the browser and is never shown.
import { app } from "../../scripts/app.js";

const WIDGET = "audiotoken_result";
const FONT_PX = 11, LINE_PX = 14, PAD_PX = 8;
const MIN_WIDTH = 480, MAX_ROWS = 24;  // a longer result scrolls in its box

let measure;
function textWidth(line) {
    measure ??= document.createElement("canvas").getContext("2d");
    measure.font = `${FONT_PX}px monospace`;
    return measure.measureText(line).width;
}

// Rows the text takes when wrapped at `width` px: the node is sized before the box is laid out, so it cannot be
// measured in the page yet. Words longer than a row (paths) are broken, as `overflow-wrap: anywhere` does.
function wrappedRows(text, width) {
    return text.split("\n").reduce((rows, line) => rows + Math.max(1, Math.ceil(textWidth(line) / width)), 0);
}

function resultWidget(node) {
    const found = node.widgets?.find((w) => w.name === WIDGET);
    if (found) return found;
    const box = document.createElement("textarea");
    box.readOnly = true;
    box.className = "comfy-multiline-input";
    box.dataset.audiotokenResult = node.comfyClass ?? node.type;
    box.style.cssText = `width: 100%; height: 100%; box-sizing: border-box; resize: none; padding: ${PAD_PX / 2}px;`
        + ` font: ${FONT_PX}px/${LINE_PX}px monospace; white-space: pre-wrap; overflow-wrap: anywhere;`
        + " opacity: 0.85;";
    // Not an input: kept out of the prompt and of the saved workflow's widget values.
    const widget = node.addDOMWidget(WIDGET, "audiotoken_result", box, {
        serialize: false,
        getValue: () => box.value,
        setValue: (value) => { box.value = value ?? ""; },
        getMinHeight: () => widget.contentHeight ?? 3 * LINE_PX + PAD_PX,
    });
    widget.serialize = false;
    return widget;
}

// Grows the node until its box shows the whole text (up to MAX_ROWS), once the frontend has laid the box out:
// the estimate above cannot know each frontend's margins and fonts.
function fitToText(node, widget, frames = 30) {
    requestAnimationFrame(() => {
        const box = widget.element;
        const cap = MAX_ROWS * LINE_PX + PAD_PX + 4;
        if (!box.isConnected || !box.clientHeight) {
            if (frames > 0) fitToText(node, widget, frames - 1);
            return;
        }
        const missing = box.scrollHeight - box.clientHeight;
        if (missing <= 1 || box.clientHeight >= cap) return;
        const grow = Math.min(missing, cap - box.clientHeight);
        widget.contentHeight = (widget.contentHeight ?? box.clientHeight) + grow;
        node.setSize([node.size[0], node.size[1] + grow]);
        node.setDirtyCanvas?.(true, true);
        if (frames > 0) fitToText(node, widget, frames - 1);
    });
}

function showResult(node, text) {
    const widget = resultWidget(node);
    widget.element.value = text;
    const width = Math.max(node.size[0], MIN_WIDTH);
    const rows = Math.min(wrappedRows(text, width - 2 * 10 - PAD_PX - 4), MAX_ROWS);  // node margins, padding, border
    widget.contentHeight = rows * LINE_PX + PAD_PX + 4;
    node.setSize([width, Math.max(node.size[1], node.computeSize([width, 0])[1])]);
    node.setDirtyCanvas?.(true, true);
    fitToText(node, widget);
}

app.registerExtension({
    name: "audiotoken.NodeResults",
    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (!nodeData?.name?.startsWith("AudioToken")) return;
        const onExecuted = nodeType.prototype.onExecuted;
        nodeType.prototype.onExecuted = function (message) {
            onExecuted?.apply(this, arguments);
            const text = message?.text;
            if (text == null) return;
            showResult(this, (Array.isArray(text) ? text : [text]).join("\n"));
        };
    },
});
