/** The request `make run` prints: an Open Inference Protocol v2 body with one rendered text line. */
import { renderLinePng } from "../../test/fixtures/text-line.js";

/** The OIP v2 body of one OCR request: the PNG line as a base64 BYTES input, as the gateway expects. */
export function ocrPngBody(png: Buffer) {
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

/** An OCR infer body whose `image` input is a PNG of `text`. */
export function ocrRequestBody(text: string) {
  return ocrPngBody(renderLinePng(text));
}
