"""SpeechMamba models for hwsim: dense (SiLU), fatrelu (FATReLU) and spiking (LIF) variants.

Needs the optional ``models`` extra (torch). The simulator (``hwsim``) never imports this package;
the two meet only in trace files (``models.export`` writes them, ``hwsim.trace`` reads them).

Modules, in the order of the flow:

- ``models.data``      espeak-ng corpus builder, manifest and LibriSpeech readers, WAV loading
- ``models.features``  log-mel features (torch.stft + mel filterbank), character tokenizer
- ``models.mamba``     the Mamba block, the selective scan, the activation variants
- ``models.speech``    SpeechMamba: front end (x4 subsampling), blocks, CTC head, decoding
- ``models.metrics``   WER/CER, activation sparsity, effective MACs/ACs
- ``models.train``     training / fine-tuning command
- ``models.evaluate``  evaluation command
- ``models.export``    trace export command (trace format v1)
"""


class ModelsError(Exception):
    """A user-facing error (bad file, bad manifest, bad checkpoint) with a one-line message."""
