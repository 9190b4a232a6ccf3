// Package bench holds imgcrypt's performance benchmarks: layer encryption
// and decryption in the embedded store, the stream processor through pipes,
// and the raw cipher rates they are measured against in the same run.
// 'make bench' runs them and prints medians and ratios.
package bench
