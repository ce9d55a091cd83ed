// Package lazylog defers a logger's WithValues until a line is logged.
//
// controller-runtime gives every reconcile a logger with the controller,
// the object and a reconcile ID attached (two WithValues), and zap encodes
// such values as soon as they are attached: each reconcile allocated an
// encoder and pooled buffers that the logger then held, though at the
// usual levels a reconcile logs nothing. Here WithValues only records the
// pairs; they are handed to the underlying sink, in the same order, when
// a line is written. What is written is the same, but for one thing:
// values are read when a line is written, not when they are attached, so
// attach values (strings, object references), not pointers to what
// changes meanwhile.
package lazylog

import (
	"slices"

	"github.com/go-logr/logr"
)

// New returns a logger that writes through l's sink and attaches values
// only when it writes.
func New(l logr.Logger) logr.Logger {
	base := l.GetSink()
	if base == nil {
		return l
	}
	// One more frame (this package's) lies between the caller and the
	// underlying sink: callers are still attributed to the right line.
	if cd, ok := base.(logr.CallDepthLogSink); ok {
		base = cd.WithCallDepth(1)
	}
	return logr.New(&sink{base: base})
}

type sink struct {
	base logr.LogSink
	// values attached since base, not yet handed to it.
	values []any
}

// Init does nothing: the underlying sink was initialised by its own
// logger, and New accounts for the frame this one adds.
func (s *sink) Init(logr.RuntimeInfo) {}

func (s *sink) Enabled(level int) bool { return s.base.Enabled(level) }

func (s *sink) Info(level int, msg string, keysAndValues ...any) {
	s.flush().Info(level, msg, keysAndValues...)
}

func (s *sink) Error(err error, msg string, keysAndValues ...any) {
	s.flush().Error(err, msg, keysAndValues...)
}

func (s *sink) WithValues(keysAndValues ...any) logr.LogSink {
	// Clipped, so that two loggers derived from this one never share
	// their appended values.
	return &sink{base: s.base, values: append(slices.Clip(s.values), keysAndValues...)}
}

// WithName names the underlying sink at once: a name is not encoded, and
// names and values do not depend on the order they were given in.
func (s *sink) WithName(name string) logr.LogSink {
	return &sink{base: s.base.WithName(name), values: s.values}
}

func (s *sink) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.base.(logr.CallDepthLogSink); ok {
		return &sink{base: cd.WithCallDepth(depth), values: s.values}
	}
	return s
}

// flush is the underlying sink with the values attached.
func (s *sink) flush() logr.LogSink {
	if len(s.values) == 0 {
		return s.base
	}
	return s.base.WithValues(s.values...)
}
