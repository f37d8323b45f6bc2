package sqlstore

import "github.com/fleetca/fleetca/internal/store"

// Keyset paging shared by the list queries.

// trimPage cuts the extra row keysetQuery asks for and, when there was one,
// returns the cursor of the page's last item.
func trimPage[T any](items []T, limit int, cursor func(*T) store.Cursor) ([]T, *store.Cursor) {
	if len(items) <= limit {
		return items, nil
	}
	items = items[:limit]
	next := cursor(&items[limit-1])
	return items, &next
}

// keysetQuery completes a SELECT whose WHERE clause is open with the keyset
// condition, the order and the limit of one page (plus one row, to learn
// whether another page follows).
func keysetQuery(base, idColumn string, args []any, after *store.Cursor, ascending bool, limit int) (string, []any) {
	cmp, order := "<", "DESC"
	if ascending {
		cmp, order = ">", "ASC"
	}
	if after != nil {
		base += ` AND (created_us, ` + idColumn + `) ` + cmp + ` (?, ?)`
		args = append(args, after.Time.UnixMicro(), after.ID)
	}
	base += ` ORDER BY created_us ` + order + `, ` + idColumn + ` ` + order + ` LIMIT ?`
	return base, append(args, limit+1)
}

// page cuts a result read with limit+1 rows to limit, telling whether more
// follow.
func page[T any](items []T, err error, limit int) ([]T, bool, error) {
	if err != nil {
		return nil, false, err
	}
	if len(items) > limit {
		return items[:limit], true, nil
	}
	return items, false, nil
}
