"""An app that fetches its model from the Hugging Face hub at start, as most model cards show."""

import uvicorn
from fastapi import FastAPI
from huggingface_hub import hf_hub_download

weights = hf_hub_download(repo_id="streambench-test/tiny-denoiser", filename="model.onnx")

app = FastAPI()


@app.get("/")
def model() -> dict[str, str]:
    return {"weights": weights}


if __name__ == "__main__":
    uvicorn.run(app, host="0.0.0.0", port=8000)
