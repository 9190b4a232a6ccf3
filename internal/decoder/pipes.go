package decoder

import (
	"os"

	"golang.org/x/sys/unix"
)

// pipeSize is what the decoder asks the kernel for on its stdin and stdout
// pipes. The default 64 KiB makes both sides wake each other for every
// 64 KiB; a larger pipe lets them run in bulk (1 MiB is the limit an
// unprivileged process may set, by default).
const pipeSize = 1 << 20

// GrowPipes enlarges f's pipe buffer when f is a pipe; anything else, or a
// refusal, is left as it is: it only costs speed.
func GrowPipes(files ...*os.File) {
	for _, f := range files {
		fi, err := f.Stat()
		if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			continue
		}
		unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, pipeSize)
	}
}
