/**
 * Keys for POST to an object: unique, and sorting as strings in creation order
 * (48-bit millisecond time, then a 72-bit counter that starts random and is
 * bumped within one millisecond), like Firebase push IDs.
 */
import { randomBytes } from 'node:crypto';

// ASCII order, so string comparison equals numeric comparison.
const alphabet = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';

let lastTime = -1;
const counter: number[] = new Array<number>(12).fill(0);

export function pushId(now = Date.now()): string {
  let time = Math.max(now, lastTime);
  if (time === lastTime) {
    // Same millisecond: increment the counter so ids still sort in order.
    let i = counter.length - 1;
    while (i >= 0 && counter[i] === 63) counter[i--] = 0;
    if (i < 0) {
      time += 1;
      reseed();
    } else {
      counter[i] = (counter[i] as number) + 1;
    }
  } else {
    reseed();
  }
  lastTime = time;
  let timePart = '';
  for (let i = 0; i < 8; i++) {
    timePart = alphabet.charAt(time % 64) + timePart;
    time = Math.floor(time / 64);
  }
  let id = timePart;
  for (const digit of counter) id += alphabet.charAt(digit);
  return id;
}

function reseed(): void {
  const bytes = randomBytes(12);
  // The first digit keeps room to count up within one millisecond.
  for (let i = 0; i < 12; i++) counter[i] = (bytes[i] as number) % 64;
  counter[0] = (counter[0] as number) % 32;
}
