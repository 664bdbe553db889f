import type { XPort } from '../../src/x/port.js';

/**
 * An X adapter with some calls replaced (to count, hold or sabotage them);
 * every other call goes to `x` as it is. (A class instance's methods are
 * not own properties, so `{ ...x }` would drop them.)
 */
export function overrideX(x: XPort, over: Partial<XPort>): XPort {
  return {
    createPost: x.createPost.bind(x),
    sendDm: x.sendDm.bind(x),
    timeline: x.timeline.bind(x),
    dmEvents: x.dmEvents.bind(x),
    ...(x.uploadMedia && { uploadMedia: x.uploadMedia.bind(x) }),
    ...(x.setAltText && { setAltText: x.setAltText.bind(x) }),
    ...over,
  };
}
