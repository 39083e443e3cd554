/** The request `make run` prints: an Open Inference Protocol v2 body with one rendered text line. */
import { renderLinePng } from "../../test/fixtures/text-line.js";

/** An OCR infer body whose `image` input is a PNG of `text`, base64 as the gateway expects. */
export function ocrRequestBody(text: string) {
  const png = renderLinePng(text);
  return {
    inputs: [
      {
        name: "image",
        datatype: "BYTES",
        shape: [1],
        parameters: { content_type: "base64" },
        data: [png.toString("base64")],
      },
    ],
  };
}
