"""The FastRTC guide's `StreamHandler` echo, as written there: send each microphone frame back, served by
`stream.ui.launch()`."""

from queue import Queue

import numpy as np
from fastrtc import Stream, StreamHandler


class EchoHandler(StreamHandler):
    def __init__(self) -> None:
        super().__init__()
        self.queue = Queue()

    def receive(self, frame: tuple[int, np.ndarray]) -> None:
        self.queue.put(frame)

    def emit(self) -> None:
        return self.queue.get()

    def copy(self) -> StreamHandler:
        return EchoHandler()

    def shutdown(self) -> None:
        pass

    def start_up(self) -> None:
        pass


stream = Stream(handler=EchoHandler(), modality="audio", mode="send-receive")

if __name__ == "__main__":
    stream.ui.launch()
