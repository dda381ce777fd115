package main

import (
	"bytes"
	bo "encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"gorgonia.org/tensor"

	"multigpu/tensorio"
)

// Across ranks, what the command reads from files (the model, --input,
// --weights, --data, a checkpoint to resume) is read by rank 0 alone and
// broadcast to the others, so that the ranks need no shared filesystem
// and read nothing twice: every rank calls share at the same point, rank
// 0 reads and sends, the others receive what it read (or that it failed:
// then each rank fails, rank 0 with the reason).

// bundle is what share moves: named strings and sets of named tensors (a
// nil set stays nil).
type bundle struct {
	text map[string]string
	sets []map[string]*tensor.Dense
}

// share returns, on every rank, the bundle read returns on rank 0; what
// names it in errors. Without a job it is read.
func (j *rankJob) share(what string, read func() (bundle, error)) (bundle, error) {
	if j == nil {
		return read()
	}
	var payload []byte
	var readErr error
	var own bundle // rank 0's, as read
	if j.rank == 0 {
		if own, readErr = read(); readErr == nil {
			if payload, readErr = own.encode(); readErr != nil {
				readErr = fmt.Errorf("%s: sending it to the other ranks: %w", what, readErr)
			}
		}
	}
	// The header: whether rank 0 read it, and the payload's length.
	head := make([]byte, 9)
	if readErr != nil {
		head[0] = 1
	}
	bo.LittleEndian.PutUint64(head[1:], uint64(len(payload)))
	if err := j.comm.Bcast(head, 0); err != nil {
		return bundle{}, fmt.Errorf("%s: broadcast from rank 0: %w", what, err)
	}
	if head[0] != 0 {
		if readErr != nil {
			return bundle{}, readErr
		}
		return bundle{}, fmt.Errorf("%s: rank 0 could not read it (rank 0 says why)", what)
	}
	n := bo.LittleEndian.Uint64(head[1:])
	if j.rank != 0 {
		if n > 1<<50 {
			return bundle{}, fmt.Errorf("%s: rank 0 announced %d bytes", what, n)
		}
		payload = make([]byte, n)
	}
	if err := j.comm.Bcast(payload, 0); err != nil {
		return bundle{}, fmt.Errorf("%s: broadcast from rank 0: %w", what, err)
	}
	if j.rank == 0 {
		return own, nil
	}
	out, err := decodeBundle(payload)
	if err != nil {
		return bundle{}, fmt.Errorf("%s: as broadcast from rank 0: %w", what, err)
	}
	return out, nil
}

// shareTensors is share of one set of tensors.
func (j *rankJob) shareTensors(what string, read func() (map[string]*tensor.Dense, error)) (map[string]*tensor.Dense, error) {
	b, err := j.share(what, func() (bundle, error) {
		ts, err := read()
		return bundle{sets: []map[string]*tensor.Dense{ts}}, err
	})
	if err != nil {
		return nil, err
	}
	if len(b.sets) != 1 {
		return nil, fmt.Errorf("%s: expected one set of tensors from rank 0, found %d", what, len(b.sets))
	}
	return b.sets[0], nil
}

// shareBytes is share of one byte string.
func (j *rankJob) shareBytes(what string, read func() ([]byte, error)) ([]byte, error) {
	b, err := j.share(what, func() (bundle, error) {
		data, err := read()
		return bundle{text: map[string]string{"": string(data)}}, err
	})
	if err != nil {
		return nil, err
	}
	return []byte(b.text[""]), nil
}

// encode writes b: the strings (count, then key and value), then the
// sets (count; per set its entries plus one, 0 for nil; per entry the
// name and the tensor as .npy), every length a uvarint, in sorted order.
func (b bundle) encode() ([]byte, error) {
	var w bytes.Buffer
	str := func(s string) {
		w.Write(bo.AppendUvarint(nil, uint64(len(s))))
		w.WriteString(s)
	}
	w.Write(bo.AppendUvarint(nil, uint64(len(b.text))))
	for _, k := range slices.Sorted(maps.Keys(b.text)) {
		str(k)
		str(b.text[k])
	}
	w.Write(bo.AppendUvarint(nil, uint64(len(b.sets))))
	var npy bytes.Buffer
	for _, set := range b.sets {
		if set == nil {
			w.WriteByte(0)
			continue
		}
		w.Write(bo.AppendUvarint(nil, uint64(len(set))+1))
		for _, name := range slices.Sorted(maps.Keys(set)) {
			npy.Reset()
			if err := tensorio.WriteNPY(&npy, set[name]); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			str(name)
			str(npy.String())
		}
	}
	return w.Bytes(), nil
}

// decodeBundle reads what encode wrote.
func decodeBundle(p []byte) (bundle, error) {
	r := bytes.NewReader(p)
	errShort := errors.New("the data ends early")
	count := func() (int, error) {
		n, err := bo.ReadUvarint(r)
		if err != nil || n > uint64(r.Len())+1 {
			return 0, errShort
		}
		return int(n), nil
	}
	str := func() (string, error) {
		n, err := count()
		if err != nil || n > r.Len() {
			return "", errShort
		}
		s := make([]byte, n)
		r.Read(s)
		return string(s), nil
	}
	var b bundle
	n, err := count()
	if err != nil {
		return b, err
	}
	if n > 0 {
		b.text = make(map[string]string, n)
	}
	for range n {
		k, err := str()
		if err != nil {
			return b, err
		}
		if b.text[k], err = str(); err != nil {
			return b, err
		}
	}
	if n, err = count(); err != nil {
		return b, err
	}
	for range n {
		m, err := count()
		if err != nil {
			return b, err
		}
		if m == 0 {
			b.sets = append(b.sets, nil)
			continue
		}
		set := make(map[string]*tensor.Dense, m-1)
		for range m - 1 {
			name, err := str()
			if err != nil {
				return b, err
			}
			data, err := str()
			if err != nil {
				return b, err
			}
			if set[name], err = tensorio.ReadNPY(bytes.NewReader([]byte(data))); err != nil {
				return b, fmt.Errorf("%s: %w", name, err)
			}
		}
		b.sets = append(b.sets, set)
	}
	if r.Len() != 0 {
		return b, fmt.Errorf("%d bytes left over", r.Len())
	}
	return b, nil
}
