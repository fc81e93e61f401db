// The small document every HTTP benchmark serves.
export const document = {
  sniffles: [
    { name: 'fred', rank: 'sniffle chief', tags: ['a', 'b'] },
    { name: 'irma', rank: 'sniffle', tags: [] },
    { name: 'wobble', rank: 'sniffle', tags: ['c'] },
  ],
  snuffle: { name: 'gundar' },
};
